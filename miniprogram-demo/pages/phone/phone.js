// Phone: the getPhoneNumber button. New clients send the code; where only encryptedData and iv
// come back (older base libraries), those are sent instead.
const wxlogin = require('../../utils/wxlogin.js');

Page({
  data: { phone: null, error: '' },

  async onGetPhoneNumber(e) {
    if (!e.detail || (!e.detail.code && !e.detail.encryptedData)) {
      this.setData({ error: wxlogin.messageFor({ code: 'phone_refused' }) });
      return;
    }
    try {
      const phone = await wxlogin.phoneNumber(e.detail);
      this.setData({ phone, error: '' });
    } catch (err) {
      this.setData({ error: wxlogin.messageFor(err) });
    }
  },
});

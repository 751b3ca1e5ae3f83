// The business's own API: my orders, fetched with an access token (wxlogin.request), which the
// business's server verifies offline against wxlogin's JWKS.
const wxlogin = require('../../utils/wxlogin.js');

Page({
  data: { orders: [], owner: '', loading: true, error: '' },

  async onShow() {
    this.setData({ loading: true, error: '' });
    try {
      const answer = await wxlogin.request('/orders');
      this.setData({ orders: answer.orders, owner: answer.user, loading: false });
    } catch (err) {
      this.setData({ loading: false, error: wxlogin.messageFor(err) });
    }
  },
});

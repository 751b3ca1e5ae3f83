// Binding: with a bindTicket (the server answered binding_required), binds this WeChat user to
// an existing account; without one, gives the signed-in account a username and password.
const wxlogin = require('../../utils/wxlogin.js');

Page({
  data: { username: '', password: '', hasTicket: false, error: '', busy: false },

  onLoad() {
    this.setData({ hasTicket: !!getApp().globalData.bindTicket });
  },

  onUsername(e) {
    this.setData({ username: e.detail.value });
  },

  onPassword(e) {
    this.setData({ password: e.detail.value });
  },

  async submit() {
    const app = getApp();
    const { username, password } = this.data;
    this.setData({ busy: true, error: '' });
    try {
      if (app.globalData.bindTicket) {
        const session = await wxlogin.bind(app.globalData.bindTicket, username, password);
        app.globalData.bindTicket = null;
        app.globalData.user = session.user;
      } else {
        app.globalData.user = await wxlogin.setCredentials(username, password);
      }
      this.setData({ busy: false });
      wx.reLaunch({ url: '/pages/index/index' });
    } catch (err) {
      if (err.code === 'unauthenticated' && app.globalData.bindTicket) {
        // The ticket expired: start over with a fresh login.
        app.globalData.bindTicket = null;
      }
      this.setData({ busy: false, error: wxlogin.messageFor(err) });
    }
  },
});

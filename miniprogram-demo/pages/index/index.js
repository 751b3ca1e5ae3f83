// Sign-in: waits for the silent login of app.js, then shows who is signed in.
const wxlogin = require('../../utils/wxlogin.js');

Page({
  data: { user: null, loading: true, error: '' },

  async onShow() {
    const app = getApp();
    this.setData({ loading: true, error: '' });
    try {
      await app.ready;
      const user = await wxlogin.call('/api/v1/me');
      app.globalData.user = user;
      this.setData({ user, loading: false });
    } catch (err) {
      if (err.code === 'binding_required') {
        app.globalData.bindTicket = err.bindTicket;
        wx.navigateTo({ url: '/pages/bind/bind' });
        return;
      }
      this.setData({ loading: false, error: wxlogin.messageFor(err) });
    }
  },

  toProfile() {
    wx.navigateTo({ url: '/pages/profile/profile' });
  },

  toPhone() {
    wx.navigateTo({ url: '/pages/phone/phone' });
  },

  toOrders() {
    wx.navigateTo({ url: '/pages/orders/orders' });
  },

  toBind() {
    wx.navigateTo({ url: '/pages/bind/bind' });
  },

  async signOut() {
    await wxlogin.logout();
    getApp().globalData.user = null;
    this.setData({ user: null });
    wx.showToast({ title: 'Signed out', icon: 'none' });
  },
});

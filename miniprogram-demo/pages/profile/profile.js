// Profile: GET and PATCH /api/v1/me, and sign-out.
const wxlogin = require('../../utils/wxlogin.js');

Page({
  data: { user: null, nickname: '', error: '' },

  async onLoad() {
    try {
      const user = await wxlogin.call('/api/v1/me');
      this.setData({ user, nickname: user.nickname || '' });
    } catch (err) {
      this.setData({ error: wxlogin.messageFor(err) });
    }
  },

  onNickname(e) {
    this.setData({ nickname: e.detail.value });
  },

  async save() {
    try {
      const user = await wxlogin.call('/api/v1/me', { method: 'PATCH', data: { nickname: this.data.nickname } });
      getApp().globalData.user = user;
      this.setData({ user, error: '' });
      wx.showToast({ title: 'Saved' });
    } catch (err) {
      this.setData({ error: wxlogin.messageFor(err) });
    }
  },

  async signOut() {
    await wxlogin.logout();
    getApp().globalData.user = null;
    wx.reLaunch({ url: '/pages/index/index' });
  },
});

// Signs in silently at launch; pages wait for `app.ready`.
const wxlogin = require('./utils/wxlogin.js');

App({
  globalData: { user: null, bindTicket: null },

  onLaunch() {
    this.ready = wxlogin
      .ensureSession()
      .then((session) => {
        if (session && session.user) this.globalData.user = session.user;
        return session;
      })
      .catch((err) => {
        // The server wants this WeChat user bound to an account first.
        if (err.code === 'binding_required') {
          this.globalData.bindTicket = err.bindTicket;
          wx.redirectTo({ url: '/pages/bind/bind' });
          return null;
        }
        wx.showToast({ title: wxlogin.messageFor(err), icon: 'none' });
        return null;
      });
  },
});

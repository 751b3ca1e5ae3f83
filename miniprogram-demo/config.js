// The one place the server is named. In WeChat DevTools against `wxlogin demo`, keep the
// default and untick "verify request domain" (不校验合法域名); on a phone, use your server's
// HTTPS URL, listed in the mini program's request domains.
module.exports = {
  baseUrl: 'http://127.0.0.1:8080',
  // The business's own API (orders, carts, bookings), called with an access token.
  apiBaseUrl: 'http://127.0.0.1:9090',
  // Sent with each login; may be left empty where the server serves one mini program.
  appid: 'wx1000000000000001',
};

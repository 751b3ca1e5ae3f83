"""nginx `auth_request` and Caddy `forward_auth` in front of an echo upstream, asking wxlogin's
`/api/v1/authz`: a live token passes with the user's ids in `X-Wxlogin-*`; a missing, unknown or
logged-out one gets 401 and never reaches the upstream; a client's own `X-Wxlogin-*` headers
never reach it either.

    python3 proxies.py WXLOGIN_BASE EMULATOR_BASE COUNT_FILE NAME=URL...
"""

import json
import os
import sys
import urllib.error
import urllib.request

base, emulator, count_file = sys.argv[1], sys.argv[2], sys.argv[3]
proxies = dict(arg.split("=", 1) for arg in sys.argv[4:])


def call(url, method="GET", headers=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, None


def sign_in(user):
    _, minted = call(f"{emulator}/__emulator/login", "POST", body={"appid": "wx1000000000000001", "user": user})
    status, session = call(f"{base}/api/v1/auth/login", "POST", body={"code": minted["code"]})
    assert status == 200, session
    return session


def hits():
    return os.path.getsize(count_file) if os.path.exists(count_file) else 0


def bearer(token, **extra):
    return {"Authorization": f"Bearer {token}", **extra}


forged = {"X-Wxlogin-User": "admin", "X-Wxlogin-Unionid": "forged", "X-Wxlogin-Openid": "forged"}
for name, url in proxies.items():
    session = sign_in(f"proxy-{name}")
    user = session["user"]
    identity = user["identities"][0]
    for token in (session["token"], session["accessToken"]):
        status, seen = call(f"{url}/orders", headers=bearer(token, **forged))
        assert status == 200, (name, status)
        assert seen["x-wxlogin-user"] == user["id"], (name, seen)
        assert seen["x-wxlogin-appid"] == identity["appid"], (name, seen)
        assert seen["x-wxlogin-openid"] == identity["openid"], (name, seen)
        assert seen.get("x-wxlogin-unionid") == identity["unionid"], (name, seen)

    before = hits()
    for headers in ({}, dict(forged), bearer("2b1f8a3e-6c4d-4e5f-8a9b-0c1d2e3f4a5b"), bearer("e30.e30.AAAA")):
        status, _ = call(f"{url}/orders", headers=headers)
        assert status == 401, (name, headers, status)
    status, _ = call(f"{base}/api/v1/auth/logout", "POST", headers=bearer(session["token"]), body={})
    assert status == 204, status
    for token in (session["token"], session["accessToken"]):
        status, _ = call(f"{url}/orders", headers=bearer(token))
        assert status == 401, (name, "after logout", status)
    assert hits() == before, f"{name}: a refused request reached the upstream"
    print(f"{name}: live tokens pass with their user; missing, unknown and logged-out ones get 401; forged headers never reach the API")

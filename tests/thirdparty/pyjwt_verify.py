"""PyJWT (PyPI) verifies wxlogin's access tokens as a Python API server would: keys from the JWKS
that discovery names (PyJWKClient), ES256 only, issuer and audience checked. It must accept a
good token and reject a tampered, expired, wrong-audience and `alg: none` one.

    python3 pyjwt_verify.py ISSUER TOKEN
"""

import base64
import json
import sys
import urllib.request

import jwt

issuer, token = sys.argv[1], sys.argv[2]
config = json.load(urllib.request.urlopen(issuer + "/.well-known/openid-configuration"))
assert config["issuer"] == issuer, config
jwks = jwt.PyJWKClient(config["jwks_uri"])


def verify(t, audience=issuer, leeway=0):
    key = jwks.get_signing_key_from_jwt(t)
    return jwt.decode(t, key, algorithms=["ES256"], audience=audience, issuer=issuer, leeway=leeway)


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


claims = verify(token)
assert claims["sub"] and claims["sid"] and claims["client_id"], claims
assert jwt.get_unverified_header(token)["typ"] == "at+jwt"

head, body, sig = token.split(".")
payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
payload["sub"] = "someone-else"
refused = {
    "tampered": lambda: verify(f"{head}.{b64(payload)}.{sig}"),
    # The verifier's clock a thousand seconds on: past the token's 15 minutes.
    "expired": lambda: verify(token, leeway=-1000),
    "wrong audience": lambda: verify(token, audience="https://another.example.com"),
    "alg none": lambda: jwt.decode(
        f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': jwt.get_unverified_header(token)['kid']})}.{body}.",
        jwks.get_signing_key_from_jwt(token),
        algorithms=["ES256"],
        audience=issuer,
    ),
}
for name, attempt in refused.items():
    try:
        attempt()
    except jwt.PyJWTError:
        continue
    sys.exit(f"PyJWT accepted a {name} token")
print(f"PyJWT {jwt.__version__}: a good token verifies; tampered, expired, wrong-audience and alg-none ones do not")

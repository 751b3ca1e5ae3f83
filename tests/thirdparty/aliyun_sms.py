"""Alibaba Cloud's official Python SDK (PyPI aliyun-python-sdk-core) against wxlogin's SMS
code, both ways, since our client and our emulator share their authors:

  aliyun_sms.py sdk EMULATOR_URL ACCESS_KEY_ID ACCESS_KEY_SECRET SIGN_NAME TEMPLATE_CODE
      The SDK's AcsClient sends SendSms (RPC, HMAC-SHA1) to the emulator of `wxlogin demo`:
      the emulator must accept the SDK's signature and put the code in its inbox, and refuse
      the same call signed with a wrong secret (SignatureDoesNotMatch).

  aliyun_sms.py capture PORT ACCESS_KEY_SECRET VERDICTS
      Plays Alibaba Cloud for wxlogin's own client (WXLOGIN_SMS_PROVIDER=aliyun): recomputes
      each request's signature with the SDK's rpc_signature_composer over the parameters as
      they arrived, answers Code OK where it is the one sent and SignatureDoesNotMatch where
      not, and appends `match` or `mismatch` to VERDICTS.
"""

import json
import sys
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

compose_string_to_sign = getattr(rpc_signature_composer, "__compose_string_to_sign")
get_signature = getattr(rpc_signature_composer, "__get_signature")


def sdk(emulator, key_id, secret, sign_name, template_code):
    host = emulator.split("://", 1)[1]
    number = "137%08d" % (uuid.uuid4().int % 100_000_000)

    def send(key):
        client = AcsClient(key_id, key, "cn-hangzhou", auto_retry=False)
        req = CommonRequest()
        req.set_accept_format("json")
        req.set_domain(host)
        req.set_protocol_type("http")
        req.set_method("POST")
        req.set_version("2017-05-25")
        req.set_action_name("SendSms")
        req.add_query_param("PhoneNumbers", number)
        req.add_query_param("SignName", sign_name)
        req.add_query_param("TemplateCode", template_code)
        req.add_query_param("TemplateParam", json.dumps({"code": "615283"}))
        return json.loads(client.do_action_with_exception(req))

    answer = send(secret)
    assert answer["Code"] == "OK", answer
    phone = urllib.parse.quote("+86" + number)
    with urllib.request.urlopen(f"{emulator}/__emulator/sms?phone={phone}") as r:
        inbox = json.load(r)
    assert [m["params"] for m in inbox] == [["615283"]], inbox
    try:
        send(secret + "x")
        raise AssertionError("a wrong secret was accepted")
    except ServerException as e:
        assert e.get_error_code() == "SignatureDoesNotMatch", e.get_error_code()
    print("aliyun sdk -> emulator: the SDK's signature is accepted, a wrong one refused")


def capture(port, secret, verdicts):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            query = urllib.parse.urlsplit(self.path).query
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
            sent = params.pop("Signature", "")
            expected = get_signature(compose_string_to_sign("POST", params), secret)
            good = sent == expected and params.get("Action") == "SendSms"
            with open(verdicts, "a") as f:
                f.write("match\n" if good else "mismatch\n")
            code = "OK" if good else "SignatureDoesNotMatch"
            data = json.dumps({"RequestId": str(uuid.uuid4()), "Code": code, "Message": code,
                               "BizId": "1^0"}).encode()
            self.send_response(200 if good else 400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    {"sdk": sdk, "capture": capture}[sys.argv[1]](*sys.argv[2:])

"""Tencent Cloud's official Python SDK (PyPI tencentcloud-sdk-python-common and -sms) against
wxlogin's SMS code, both ways, since our client and our emulator share their authors:

  tencent_sms.py sdk EMULATOR_URL SECRET_ID SECRET_KEY SDK_APP_ID SIGN_NAME TEMPLATE_ID
      The SDK's own SmsClient sends SendSms to the emulator of `wxlogin demo`, signed by the
      SDK: the emulator must accept the signature and put the code in its inbox; and the same
      call signed with a wrong key must be refused with AuthFailure.SignatureFailure.

  tencent_sms.py capture PORT SECRET_KEY VERDICTS
      Plays Tencent Cloud for wxlogin's own client (WXLOGIN_SMS_PROVIDER=tencent): recomputes
      each request's signature with the SDK's TC3 code (AbstractClient._get_tc3_signature) over
      the request as it arrived, answers Ok where it is the one in Authorization and
      AuthFailure.SignatureFailure where not, and appends `match` or `mismatch` to VERDICTS.
"""

import datetime
import json
import sys
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tencentcloud.common import credential
from tencentcloud.common.abstract_client import AbstractClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client


def sdk(emulator, secret_id, secret_key, app_id, sign_name, template_id):
    host = emulator.split("://", 1)[1]
    phone = "+86137%08d" % (uuid.uuid4().int % 100_000_000)

    def send(key):
        profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host))
        client = sms_client.SmsClient(credential.Credential(secret_id, key), "ap-guangzhou", profile)
        req = models.SendSmsRequest()
        req.PhoneNumberSet = [phone]
        req.SmsSdkAppId = app_id
        req.SignName = sign_name
        req.TemplateId = template_id
        req.TemplateParamSet = ["482913"]
        return client.SendSms(req)

    answer = send(secret_key)
    status = answer.SendStatusSet[0]
    assert status.Code == "Ok", status.Code
    with urllib.request.urlopen(f"{emulator}/__emulator/sms?phone={urllib.parse.quote(phone)}") as r:
        inbox = json.load(r)
    assert [m["params"] for m in inbox] == [["482913"]], inbox
    try:
        send(secret_key + "x")
        raise AssertionError("a wrong key was accepted")
    except TencentCloudSDKException as e:
        assert e.code == "AuthFailure.SignatureFailure", e.code
    print("tencent sdk -> emulator: the SDK's signature is accepted, a wrong one refused")


def capture(port, secret_key, verdicts):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            auth = self.headers.get("authorization", "")
            fields = dict(
                part.strip().split("=", 1) for part in auth.removeprefix("TC3-HMAC-SHA256 ").split(",")
            )
            timestamp = int(self.headers["x-tc-timestamp"])
            date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")
            req = RequestInternal(
                self.headers["host"],
                "POST",
                "/",
                {
                    "Content-Type": self.headers["content-type"],
                    "Host": self.headers["host"],
                    "X-TC-Timestamp": str(timestamp),
                },
                body.decode(),
            )
            expected = AbstractClient._get_tc3_signature(None, {}, req, date, "sms", secret_key)
            good = (
                fields.get("Signature") == expected
                and fields.get("SignedHeaders") == "content-type;host"
                and self.headers.get("x-tc-action") == "SendSms"
                and self.headers.get("x-tc-version") == "2021-01-11"
            )
            with open(verdicts, "a") as f:
                f.write("match\n" if good else "mismatch\n")
            phone = json.loads(body)["PhoneNumberSet"][0]
            if good:
                response = {
                    "SendStatusSet": [{"SerialNo": "1", "PhoneNumber": phone, "Fee": 1, "SessionContext": "",
                                       "Code": "Ok", "Message": "send success", "IsoCode": "CN"}],
                    "RequestId": str(uuid.uuid4()),
                }
            else:
                response = {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "mismatch"},
                            "RequestId": str(uuid.uuid4())}
            data = json.dumps({"Response": response}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    {"sdk": sdk, "capture": capture}[sys.argv[1]](*sys.argv[2:])

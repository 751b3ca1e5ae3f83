"""The business's API in the proxy tests: answers every request with the headers it received,
as JSON, and counts requests in a file so a test can see what never reached it.

    python3 echo_upstream.py PORT COUNT_FILE
"""

import http.server
import json
import sys

port, count_file = int(sys.argv[1]), sys.argv[2]


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(count_file, "a") as f:
            f.write("x")
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()

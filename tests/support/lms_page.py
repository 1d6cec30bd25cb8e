"""Serve a page from another site (127.0.0.1 while the tool is on localhost) that embeds a
signed launch in an iframe, as an LMS course page does."""

from __future__ import annotations

import html
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def iframe_launch_html(launch_url: str, params: dict[str, str]) -> str:
    fields = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
    )
    return f"""<!doctype html><html><head><title>Test LMS course page</title></head><body>
<h1>Course page</h1>
<form id="launch" method="post" action="{html.escape(launch_url)}" target="tool">{fields}</form>
<iframe name="tool" title="tool" style="width:100%;height:600px"></iframe>
<script>document.getElementById('launch').submit();</script>
</body></html>"""


@contextmanager
def serve_html(body: str):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()

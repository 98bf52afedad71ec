"""bert4keras' `WebServing`: serve Python functions as a small JSON web API,
for trying a model out (not for production), on the standard library's
`http.server` (bert4keras used bottle)."""

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

from nlp4keras import validation

_FORM = "application/x-www-form-urlencoded"


class WebServing:
    """A JSON web API over Python functions:

        arguments = {'text': (None, True), 'n': (int, False)}
        web = WebServing(port=8864)
        web.route('/gen_synonyms', gen_synonyms, arguments)
        web.start()  # serves until interrupted
        # GET http://127.0.0.1:8864/gen_synonyms?text=...&n=5

    Each answer is JSON `{"code": 0, "desc": "succeeded", "data": result}`;
    code 1 means a missing or malformed argument, code 2 an exception in the
    function (its message is the desc). Requests are served in threads, but
    one function call runs at a time (models are not thread-safe). `server`
    (bert4keras' bottle server name) is accepted and ignored; `port=0`
    picks a free port, readable as `web.port` once started."""

    def __init__(self, host="0.0.0.0", port=8000, server="paste"):
        who = "WebServing"
        self.host = validation.string(host, "host", who)
        self.port = validation.integer(port, "port", who, minimum=0, maximum=65535)
        self.server = validation.string(server, "server", who)
        self._routes = {}  # (method, path) -> (func, arguments)
        self._call_lock = threading.Lock()
        self._httpd = None

    def route(self, path, func, arguments, method="GET"):
        """Serve `func` at `path`. `arguments` maps each parameter name of
        `func` to `(convert, required)`: `convert` (e.g. int, or None to keep
        the str) is applied to the value received, and a request without a
        required argument is answered with code 1. GET reads the query
        string, POST a form body (application/x-www-form-urlencoded)."""
        who = "WebServing.route"
        validation.string(path, "path", who)
        if not path.startswith("/"):
            raise ValueError(f"{who}: `path` must start with '/', got {path!r}")
        if not callable(func):
            validation.instance(func, "func", (), who, what="a callable")
        method = validation.one_of(method, "method", ("GET", "POST"), who)
        self._routes[method, path] = (func, _checked_arguments(arguments, who))

    def start(self):
        """Listen on `host:port` and serve until `stop()` or Ctrl-C."""
        if self._httpd is not None:
            raise RuntimeError("WebServing.start: already serving")
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler_class(self))
        self.port = self._httpd.server_address[1]
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()
            self._httpd = None

    def stop(self):
        """Stop serving (from another thread); `start()` then returns."""
        if self._httpd is not None:
            self._httpd.shutdown()

    def _answer(self, method, path, params):
        """`(HTTP status, JSON body)` for a request."""
        if (method, path) not in self._routes:
            other = "POST" if method == "GET" else "GET"
            if (other, path) in self._routes:
                return HTTPStatus.METHOD_NOT_ALLOWED, _reply(1, f"{path} takes {other} requests")
            return HTTPStatus.NOT_FOUND, _reply(1, f"no route {path}")
        func, arguments = self._routes[method, path]
        kwargs = {}
        for name, (convert, required) in arguments.items():
            if name not in params:
                if required:
                    return HTTPStatus.OK, _reply(1, f'lack of "{name}" argument')
                continue
            value = params[name][-1]  # the last one, if repeated
            try:
                kwargs[name] = value if convert is None else convert(value)
            except Exception as error:
                return HTTPStatus.OK, _reply(1, f'bad "{name}" argument {value!r}: {error}')
        try:
            with self._call_lock:
                data = func(**kwargs)
            return HTTPStatus.OK, _reply(0, "succeeded", data)
        except Exception as error:
            return HTTPStatus.OK, _reply(2, str(error))


def _checked_arguments(arguments, who):
    """`{name: (convert or None, required)}` checked, as a dict."""
    what = "a dict {name: (convert, required)}"
    validation.instance(arguments, "arguments", dict, who, what=what)
    checked = {}
    for name, spec in arguments.items():
        validation.string(name, "arguments key", who)
        where = f"arguments[{name!r}]"
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
            validation.instance(spec, where, (), who, what="a pair (convert or None, required)")
        convert, required = spec
        validation.callable_or_none(convert, f"{where}[0]", who)
        checked[name] = (convert, validation.boolean(required, f"{where}[1]", who))
    return checked


def _reply(code, desc, data=None):
    body = {"code": code, "desc": desc, "data": {} if data is None and code else data}
    try:
        return json.dumps(body, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError) as error:
        return _reply(2, f"the result cannot be sent as JSON: {error}")


def _plain(value):
    """numpy arrays and scalars as lists and numbers, for JSON."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _handler_class(web):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            self._send(*web._answer("GET", url.path, parse_qs(url.query, keep_blank_values=True)))

        def do_POST(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            kind = (self.headers.get("Content-Type") or _FORM).split(";")[0].strip().lower()
            if kind != _FORM:
                message = _reply(1, f"send the arguments as a form ({_FORM}), not {kind}")
                return self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, message)
            self._send(*web._answer("POST", url.path, parse_qs(body, keep_blank_values=True)))

        def _send(self, status, text):
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler

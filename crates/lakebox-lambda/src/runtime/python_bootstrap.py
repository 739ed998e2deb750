# Lakebox's Python runtime client: the loop AWS's runtime interface client runs inside a
# Lambda execution environment, speaking the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API
# (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). Started by Lakebox with
# the function's code in LAMBDA_TASK_ROOT and its handler in _HANDLER.
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"


_conn = None


def call(method, path, body=None, headers=None):
    # One kept-alive connection (a warm invocation costs no connects); made again if the
    # server closed it. When the server is gone for good, the error ends this process.
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            _conn = http.client.HTTPConnection(API, timeout=None)
        try:
            _conn.request(method, BASE + path, body=body, headers=headers or {})
            resp = _conn.getresponse()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            _conn.close()
            _conn = None
            if attempt:
                raise


def error_body(exc, error_type=None, request_id=""):
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": [
            '  File "%s", line %d, in %s\n    %s\n' % (f.filename, f.lineno, f.name, f.line or "")
            for f in frames
        ],
    }


def mark_end(request_id):
    # Tells Lakebox that everything the invocation wrote is in the pipes, so its log (and
    # LogType=Tail) is complete when the answer goes back. Lakebox keeps this line out of logs.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        stream.write("\x1elakebox:end %s\n" % request_id)
        stream.flush()


def post_json(path, doc, error_type=None):
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["Lambda-Runtime-Function-Error-Type"] = error_type
    call("POST", path, json.dumps(doc).encode(), headers)


class ClientContext:
    def __init__(self, doc):
        self.client = doc.get("client")
        self.custom = doc.get("custom")
        self.env = doc.get("env")


class CognitoIdentity:
    def __init__(self, doc):
        self.cognito_identity_id = doc.get("cognitoIdentityId")
        self.cognito_identity_pool_id = doc.get("cognitoIdentityPoolId")


class LambdaContext:
    """The context object AWS passes a Python handler, with the same attributes."""

    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id", "")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn", "")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        cc = headers.get("lambda-runtime-client-context")
        self.client_context = ClientContext(json.loads(cc)) if cc else None
        ci = headers.get("lambda-runtime-cognito-identity")
        self.identity = CognitoIdentity(json.loads(ci)) if ci else CognitoIdentity({})
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg):
        sys.stdout.write(str(msg))
        sys.stdout.flush()


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    module_path, _, name = spec.rpartition(".")
    if not module_path or not name:
        raise _Fault("Runtime.MalformedHandlerName", "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % spec)
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise _Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    except SyntaxError as e:
        raise _Fault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, e))
    handler = getattr(module, name, None)
    if handler is None:
        raise _Fault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (name, module_name))
    return handler


class _Fault(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def main():
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    for p in ("/opt/python", task_root):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        handler = load_handler()
    except _Fault as f:
        doc = {"errorMessage": str(f), "errorType": f.error_type, "requestId": "", "stackTrace": []}
        print("[ERROR] %s: %s" % (f.error_type, f), flush=True)
        post_json("/init/error", doc, f.error_type)
        sys.exit(1)
    except Exception as e:
        doc = error_body(e)
        print("[ERROR] %s: %s" % (doc["errorType"], e), flush=True)
        post_json("/init/error", doc, "Runtime.Unknown")
        sys.exit(1)
    while True:
        status, headers, body = call("GET", "/invocation/next")
        if status != 200:
            time.sleep(0.05)
            continue
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        trace = headers.get("lambda-runtime-trace-id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        try:
            event = json.loads(body) if body else None
            result = handler(event, LambdaContext(headers))
        except Exception as e:
            doc = error_body(e, request_id=request_id)
            print("[ERROR] %s: %s" % (doc["errorType"], e), flush=True)
            traceback.print_exc()
            mark_end(request_id)
            post_json("/invocation/%s/error" % request_id, doc, "Unhandled")
            continue
        try:
            out = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            doc = {"errorMessage": "Unable to marshal response: %s" % e, "errorType": "Runtime.MarshalError",
                   "requestId": request_id, "stackTrace": []}
            mark_end(request_id)
            post_json("/invocation/%s/error" % request_id, doc, "Runtime.MarshalError")
            continue
        mark_end(request_id)
        call("POST", "/invocation/%s/response" % request_id, out, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()

"""The one error shape every service answers with, OpenAI's:
`{"error": {"message", "type", "param", "code"}}`, so that the `openai` client raises its typed
exceptions (BadRequestError, NotFoundError, ...) for ours as for vLLM's."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse


class APIError(Exception):
    """A refused request: its HTTP status, a message for the caller, OpenAI's `code` and `param`."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": body}, status_code=self.status)


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) past `limit` bytes: by its declared length before a byte is
    read, and while reading one sent without a length."""
    check_length(request, limit)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise APIError(413, f"the request body exceeds {limit} bytes", "request_too_large")
    return body


def check_length(request: Request, limit: int) -> None:
    """Refuse (413) a request whose declared body length exceeds `limit` bytes."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise APIError(413, f"the request body exceeds {limit} bytes", "request_too_large")


def invalid(errors: list) -> APIError:
    """A request body that does not parse or does not match its model (pydantic's errors): 400, as
    OpenAI answers."""
    first = errors[0]
    param = ".".join(str(part) for part in first["loc"] if part != "body") or None
    message = f"{param}: {first['msg']}" if param else first["msg"]
    return APIError(400, message, "invalid_request", param)


def openai_errors(app: FastAPI) -> FastAPI:
    """Answer every refusal of `app` in the OpenAI shape."""

    @app.exception_handler(APIError)
    async def refused(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(exc.errors()).response()

    return app

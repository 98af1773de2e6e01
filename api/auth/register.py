"""POST /api/auth/register {"email","password"} -> 201 {"user","session"|null}."""

from sorastudio import accounts
from sorastudio.models import RegisterRequest
from sorastudio.web import ApiHandler, ApiRequest, Result


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def post(self, req: ApiRequest) -> Result:
        body = req.parse(RegisterRequest)
        return 201, accounts.register(req.settings, body.email, body.password)

"""POST /api/auth/login {"email","password"} or {"refreshToken"} -> 200 {"user","session"}."""

from sorastudio import accounts
from sorastudio.models import Credentials, RefreshRequest
from sorastudio.web import ApiHandler, ApiRequest, Result


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def post(self, req: ApiRequest) -> Result:
        data = req.json_object()
        if "refreshToken" in data:
            token = req.parse(RefreshRequest, data).refresh_token
            return 200, accounts.refresh(req.settings, token)
        creds = req.parse(Credentials, data)
        return 200, accounts.login(req.settings, creds.email, creds.password)

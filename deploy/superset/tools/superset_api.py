"""The few calls of Superset's REST API the checks make (standard library only)."""

import json
import urllib.error
import urllib.request


def call(base, path, token=None, body=None):
    """GET `path`, or POST `body` as JSON; returns (HTTP status, decoded JSON)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.load(error)
        except ValueError:
            return error.code, {"message": error.reason}


def dashboard_charts(base, token, slug):
    """The charts on dashboard `slug`, by id, or None after printing why not."""
    status, reply = call(base, f"/api/v1/dashboard/{slug}/charts", token)
    if status != 200:
        print(f"dashboard {slug!r}: HTTP {status} {reply}")
        return None
    return sorted(reply["result"], key=lambda chart: chart["id"])


def login(base, user, password):
    """Returns an access token, or None after printing why the login failed."""
    status, reply = call(base, "/api/v1/security/login", body={
        "username": user, "password": password, "provider": "db", "refresh": False})
    if status != 200:
        print(f"login failed: HTTP {status} {reply}")
        return None
    return reply["access_token"]

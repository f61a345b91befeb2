"""A local fake of E2B's HTTP API: the one accepted fake (E2B's cloud is out of reach here).

It speaks what the ``e2b`` SDK sends, at its HTTP boundary: the control
plane (``POST /v2/sandboxes`` → 201 with the sandbox's id and envd version,
``DELETE /sandboxes/{id}``), and envd (``GET /health``, ``GET``/``POST
/files`` with octet-stream uploads, and the connect-RPC
``process.Process/Start`` stream, served by the SDK's own
``ProcessASGIApplication`` so the wire format is E2B's). A "sandbox" here is
a folder; its commands run as local subprocesses with that folder as the
working directory — the fake checks the protocol, not isolation.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2b.envd.process import process_connect, process_pb
from protobuf import Oneof
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from _uvicorn_thread import uvicorn_thread  # tests/_uvicorn_thread.py (on the path)

ENVD_VERSION = "0.5.7"


class FakeE2B:
    """The fake's state: sandboxes (folders) by id, and every request seen."""

    def __init__(self, root: Path, api_key: str) -> None:
        self.root = root
        self.api_key = api_key
        self.sandboxes: dict[str, Path] = {}
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict[str, Any]] = []

    def folder(self, request: Request) -> Path | None:
        sandbox_id = request.headers.get("e2b-sandbox-id", "")
        return self.sandboxes.get(sandbox_id)

    def resolve(self, folder: Path, path: str) -> Path:
        target = (folder / path.lstrip("/")).resolve()
        if folder.resolve() not in (target, *target.parents):
            raise PermissionError(path)
        return target


def _event(kind: str, value: Any) -> process_pb.StartResponse:
    return process_pb.StartResponse(event=process_pb.ProcessEvent(event=Oneof(kind, value)))


class _Process(process_connect.Process):
    """envd's process service: runs the command in the sandbox's folder, streams events."""

    def __init__(self, fake: FakeE2B) -> None:
        self.fake = fake

    async def start(self, request: process_pb.StartRequest,
                    ctx: Any) -> AsyncIterator[process_pb.StartResponse]:
        sandbox_id = ctx.request_headers.get("e2b-sandbox-id", "")
        folder = self.fake.sandboxes[sandbox_id]
        config = request.process
        env = {"PATH": f"{Path(os.sys.executable).parent}:/usr/bin:/bin",  # type: ignore[attr-defined]
               "HOME": str(folder), **dict(config.envs)}
        proc = await asyncio.create_subprocess_exec(
            config.cmd, *config.args, cwd=str(folder), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        yield _event("start", process_pb.ProcessEvent.StartEvent(pid=proc.pid))
        stdout, stderr = await proc.communicate()
        if stdout:
            yield _event("data", process_pb.ProcessEvent.DataEvent(output=Oneof("stdout", stdout)))
        if stderr:
            yield _event("data", process_pb.ProcessEvent.DataEvent(output=Oneof("stderr", stderr)))
        code = proc.returncode if proc.returncode is not None else -1
        yield _event("end", process_pb.ProcessEvent.EndEvent(exit_code=code, exited=True,
                                                             status=f"exit status {code}"))


def make_app(fake: FakeE2B) -> Starlette:
    def unauthorized() -> JSONResponse:
        return JSONResponse({"code": 401, "message": "Invalid API key"}, status_code=401)

    async def create(request: Request) -> Response:
        fake.requests.append(("POST", "/v2/sandboxes"))
        if request.headers.get("x-api-key") != fake.api_key:
            return unauthorized()
        body = await request.json()
        fake.created.append(body)
        sandbox_id = "sbx" + uuid.uuid4().hex[:10]
        folder = fake.root / sandbox_id
        folder.mkdir()
        fake.sandboxes[sandbox_id] = folder
        return JSONResponse({"templateID": body.get("templateID", "base"),
                             "sandboxID": sandbox_id, "clientID": "fake",
                             "envdVersion": ENVD_VERSION}, status_code=201)

    async def kill(request: Request) -> Response:
        fake.requests.append(("DELETE", "/sandboxes"))
        if request.headers.get("x-api-key") != fake.api_key:
            return unauthorized()
        folder = fake.sandboxes.pop(request.path_params["sandbox_id"], None)
        if folder is None:
            return JSONResponse({"code": 404, "message": "sandbox not found"}, status_code=404)
        shutil.rmtree(folder, ignore_errors=True)
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return Response(status_code=204 if fake.folder(request) else 502)

    async def files(request: Request) -> Response:
        folder = fake.folder(request)
        if folder is None:
            return JSONResponse({"code": 502, "message": "sandbox not found"}, status_code=502)
        path = request.query_params.get("path", "")
        try:
            target = fake.resolve(folder, path)
        except PermissionError:
            return JSONResponse({"code": 400, "message": "path outside"}, status_code=400)
        if request.method == "GET":
            fake.requests.append(("GET", "/files"))
            if not target.is_file():
                return JSONResponse({"code": 404, "message": f"{path} not found"},
                                    status_code=404)
            return Response(target.read_bytes(), media_type="application/octet-stream")
        fake.requests.append(("POST", "/files"))
        if request.headers.get("content-type") != "application/octet-stream":
            return JSONResponse({"code": 415, "message": "the fake takes octet-stream uploads"},
                                status_code=415)
        data = await request.body()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return JSONResponse([{"name": target.name, "type": "file", "path": path}])

    envd = process_connect.ProcessASGIApplication(_Process(fake))
    return Starlette(routes=[
        Route("/v2/sandboxes", create, methods=["POST"]),
        Route("/sandboxes/{sandbox_id}", kill, methods=["DELETE"]),
        Route("/health", health, methods=["GET"]),
        Route("/files", files, methods=["GET", "POST"]),
        Mount(envd.path, app=envd),
    ])


@contextmanager
def serve_fake_e2b(api_key: str = "e2b_test_key") -> Iterator[tuple[FakeE2B, str]]:
    """Run the fake on a loopback port; yields it and its base URL."""
    root = Path(tempfile.mkdtemp(prefix="fake-e2b-"))
    fake = FakeE2B(root, api_key)
    try:
        with uvicorn_thread(make_app(fake), "the fake E2B server", join_s=10,
                            lifespan="off") as url:
            yield fake, url
    finally:
        shutil.rmtree(root, ignore_errors=True)

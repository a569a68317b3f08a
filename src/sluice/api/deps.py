"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from sluice.bootstrap import Container
from sluice.services.apps import AppAuth
from sluice.services.errors import ServiceUnavailable
from sluice.services.runs import RunService
from sluice.services.streams import StreamService


def container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


ContainerDep = Annotated[Container, Depends(container)]


async def app_auth(
    c: ContainerDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> AppAuth:
    return await c.apps.authenticate(authorization)


def runs(c: ContainerDep) -> RunService:
    if c.runs is None:
        raise ServiceUnavailable("Runs are not available in this process.")
    return c.runs


def streams(c: ContainerDep) -> StreamService:
    if c.streams is None:
        raise ServiceUnavailable("Streams are not available in this process.")
    return c.streams


AppAuthDep = Annotated[AppAuth, Depends(app_auth)]
RunsDep = Annotated[RunService, Depends(runs)]
StreamsDep = Annotated[StreamService, Depends(streams)]

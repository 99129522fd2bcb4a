"""The user a container runs as, on a real engine: the image's own, resolved to numbers
through the image's /etc/passwd and /etc/group, and never uid 0 or gid 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from openpista.core.tool import ToolContext
from openpista.sandbox.container_tool import ContainerRunTool
from openpista.sandbox.containers import ContainerEngine
from openpista.sandbox.image_user import resolve_user
from openpista.sandbox.testing import IMAGE, TestEngine

from .conftest import needs_engine

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")
# `admin` is root under another name; `sandbox` is listed as a member of group root.
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "admin:x:0:0:admin:/root:/bin/sh\n"
    "sandbox:x:1000:1000:sandbox:/tmp:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:sandbox\nsandbox:x:1000:\nnogroup:x:65534:\n"
USERS = {
    # image USER: what `id -u; id -g; id -G` prints in the container
    "admin": "65534 65534 65534",
    "65534:0": "65534 65534 65534",
    "sandbox:root": "1000 65534 65534",
    "0:1000": "65534 65534 65534",
    "sandbox": "1000 1000 1000",
    "1000": "1000 1000 1000",
    "4242": "4242 65534 65534",
    "ghost": "65534 65534 65534",
    "sandbox:sandbox": "1000 1000 1000",
}


def _image(user: str) -> str:
    return "openpista/users:" + user.replace(":", "-")


@pytest.fixture(scope="module")
def user_images(engine: TestEngine) -> Iterator[None]:
    for user in USERS:
        engine.import_image(_image(user), user=user, passwd=PASSWD, group=GROUP)
    yield
    engine.docker("rmi", *(_image(user) for user in USERS))


@pytest.fixture
async def tool(engine: TestEngine, user_images: None) -> AsyncIterator[ContainerRunTool]:
    made = ContainerRunTool(ContainerEngine(engine.address), image=IMAGE, timeout_s=20)
    yield made
    await made.aclose()


@needs_engine
@pytest.mark.parametrize(("user", "expected"), list(USERS.items()))
async def test_the_image_user_runs_with_a_non_root_uid_and_gid(
    tool: ContainerRunTool, engine: TestEngine, user: str, expected: str
) -> None:
    output = await tool.run(
        {"command": "echo $(id -u) $(id -g) $(id -G)", "image": _image(user)}, CONTEXT
    )

    assert output.text == f"exit code: 0\n--- stdout ---\n{expected}"
    assert engine.containers() == []
    assert engine.containers("openpista.probe") == []  # the one that read /etc/passwd too


def test_an_image_without_account_files_runs_as_nobody_unless_all_numeric() -> None:
    assert resolve_user("sandbox") == "65534:65534"
    assert resolve_user("1000") == "1000:65534"
    assert resolve_user("1000:1000") == "1000:1000"
    assert resolve_user("") == "65534:65534"
    assert resolve_user("99999999999:5") == "65534:65534"  # no valid id

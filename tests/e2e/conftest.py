import pytest

from lakebox_harness import Lakebox, build_binary


@pytest.fixture(scope="session", autouse=True)
def lakebox_binary():
    return build_binary()


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    """A server with default settings (any credentials accepted), one per test module."""
    server = Lakebox(tmp_path_factory.mktemp("data")).start()
    yield server
    server.stop()

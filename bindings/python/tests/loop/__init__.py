"""Event-loop tests (issue 12). A package, so that this directory's
conftest.py is imported as `loop.conftest` and does not displace the module
`conftest` (../conftest.py) that the other test files import from."""

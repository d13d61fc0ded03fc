from __future__ import annotations

from parley_shared.service import serve

from parley_scheduler.bootstrap import create_app
from parley_scheduler.settings import SchedulerSettings


def main() -> None:
    settings = SchedulerSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()

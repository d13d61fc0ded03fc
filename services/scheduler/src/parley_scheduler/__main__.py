from __future__ import annotations

from parley_shared.service import service_main

from parley_scheduler.bootstrap import create_app
from parley_scheduler.settings import SchedulerSettings


def main() -> None:
    service_main(SchedulerSettings, create_app)


if __name__ == "__main__":
    main()

"""(temporary shell; being written for issue 5) Hub: per-client slot and credit, fan-out."""


class Hub:
    def __init__(self, settings) -> None:
        self.settings = settings

    def on_event(self, event: dict) -> None:
        pass

    async def close(self) -> None:
        pass

"""(temporary shell; being written for issue 4) Engine: the device thread."""


class Engine:
    def __init__(self, settings, store, datasets) -> None:
        self.settings = settings
        self.device = "cpu"

    def start(self, loop, on_event) -> None:
        pass

    def stop(self) -> None:
        pass

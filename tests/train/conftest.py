"""One torch thread: the machine is shared, and the engine trains with one thread on the CPU."""

import torch

torch.set_num_threads(1)

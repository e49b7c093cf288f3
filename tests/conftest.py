"""Shared test setup."""

import torch

# Tests use tiny models, for which one thread is fastest; on a shared 2-core machine, two
# threads per process oversubscribe the cores and can be ten times slower.
torch.set_num_threads(1)

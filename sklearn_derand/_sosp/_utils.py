"""Small helpers shared by the backend: devices, generators, flat parameters."""

import numpy as np
import torch

__all__ = [
    "flatten",
    "make_generator",
    "randn",
    "resolve_device",
    "to_numpy",
    "to_tensor",
    "unflattener",
]


def resolve_device(device):
    """Validate a device string ("cpu", "cuda", "cuda:N") and return it.

    Raises a ValueError a user can act on, instead of a torch traceback,
    when the device is malformed or not available.
    """
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu', got {device!r}.")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"Unknown device {device!r}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                "in this torch installation; use device='cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA "
                "device(s) are visible."
            )
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}.")
    return dev


def make_generator(seed):
    """A CPU ``torch.Generator`` seeded with ``seed`` (never the global RNG).

    Random draws are made on the CPU and moved to the working device, so the
    same seed gives the same numbers on every device.
    """
    return torch.Generator().manual_seed(int(seed))


def randn(*shape, generator=None, dtype=torch.float64, device="cpu"):
    """Standard normal draws from a CPU generator, moved to ``device``."""
    out = torch.randn(*shape, generator=generator, dtype=dtype)
    return out.to(device)


def to_tensor(array, *, dtype=torch.float64, device="cpu"):
    """Copy a numpy array (possibly read-only) into a new torch tensor."""
    return torch.tensor(np.asarray(array), dtype=dtype, device=device)


def to_numpy(tensor, dtype=None):
    """Detach a tensor to a numpy array, optionally cast to ``dtype``."""
    out = tensor.detach().cpu().numpy()
    return out if dtype is None else out.astype(dtype, copy=False)


def flatten(params):
    """Concatenate a dict of tensors into one flat (detached) vector."""
    if isinstance(params, torch.Tensor):
        return params.detach().reshape(-1).clone(), None
    if not params:
        raise ValueError("params must contain at least one tensor.")
    tensors = [torch.as_tensor(p).detach().reshape(-1) for p in params.values()]
    return torch.cat(tensors).clone(), list(params)


def unflattener(params):
    """Return a function mapping a flat vector to a dict shaped like ``params``.

    The dict values are views of the flat vector, so gradients flow back to
    it. A bare tensor maps to a tensor of its shape.
    """
    if isinstance(params, torch.Tensor):
        shape = params.shape
        return lambda x: x.view(shape)
    layout = []
    offset = 0
    for name, p in params.items():
        numel = p.numel()
        layout.append((name, offset, numel, p.shape))
        offset += numel

    def unflatten(x):
        return {
            name: x[start : start + numel].view(shape)
            for name, start, numel, shape in layout
        }

    return unflatten

"""The GPU backend: CuPy, NumPy's API on an NVIDIA GPU.

CuPy mirrors NumPy closely enough that the shared code of :class:`minigen.backend.Backend` serves it
as it is; this module adds what differs: finding a usable GPU (with errors that say what to
install), copying to the host, the window view of convolutions, waiting for queued work, and the
few array-API names an older CuPy lacks.  :mod:`minigen.backend` loads it the first time the "cupy"
backend is asked for, and CuPy itself comes through ``backend.import_library``, so that no module
but ``backend.py`` imports an array library.
"""

from . import backend as B

__all__ = ["CupyBackend", "ElementwiseKernel"]


class _CupyNamespace:
    """CuPy's root module with the few array-API names an older CuPy may lack filled in."""

    def __init__(self, cupy):
        self._cupy = cupy
        fallbacks = {
            "permute_dims": cupy.transpose,
            "concat": cupy.concatenate,
            "pow": cupy.power,
            "astype": lambda x, dtype, copy=True: x.astype(dtype, copy=copy),
            "matrix_transpose": lambda x: cupy.swapaxes(x, -1, -2),
        }
        for name, fallback in fallbacks.items():
            setattr(self, name, getattr(cupy, name, fallback))

    def __getattr__(self, name):
        return getattr(self._cupy, name)


class CupyBackend(B.Backend):
    name = "cupy"
    device = "gpu"

    def __init__(self, seed=None):
        cupy = B.import_library(
            "cupy", "the 'cupy' backend needs CuPy, which is not installed here ({err}). Install "
            "it with: pip install \"minigen[cuda12]\" (CUDA 12) or pip install \"minigen[cuda13]\" "
            "(CUDA 13), then call mg.set_backend(\"cupy\") again.")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDA raises its own error types; any of them means "no GPU here"
            raise B.BackendError(
                f"CuPy is installed but no CUDA device is usable ({type(err).__name__}: {err}). "
                "Check the NVIDIA driver (nvidia-smi) and that the CuPy package matches the CUDA "
                "version: pip install \"minigen[cuda12]\" or \"minigen[cuda13]\"."
            ) from None
        if count == 0:
            raise B.BackendError(
                "CuPy is installed but found no CUDA device. Run on a machine with an NVIDIA GPU, "
                "or stay on the CPU with mg.set_backend(\"numpy\")."
            )
        self.cupy = cupy
        self.array_type = cupy.ndarray
        self.xp = _CupyNamespace(cupy)
        super().__init__(seed)

    def to_numpy(self, array):
        return self.cupy.asnumpy(array)

    def windows(self, x, kernel, stride, dilation, out_size):
        return self.cupy.lib.stride_tricks.as_strided(
            x, *B.window_layout(x, kernel, stride, dilation, out_size))

    def synchronize(self):
        self.cupy.cuda.Device().synchronize()


class ElementwiseKernel:
    """A CUDA elementwise kernel in CuPy's notation, compiled on its first call (so that defining
    one needs no GPU).  ``in_params``/``out_params`` declare the arguments ("T x, T y"; T is bound
    by the arrays' dtype, Python floats are cast to it), ``body`` is the CUDA code run per element;
    outputs passed in are updated in place.  Call it with CuPy arrays only: the CPU has its own code
    path.
    """

    def __init__(self, in_params, out_params, body, name):
        self.in_params, self.out_params, self.body, self.name = in_params, out_params, body, name
        self._kernel = None

    def __call__(self, *args):
        if self._kernel is None:
            cupy = B.instance("cupy").cupy
            self._kernel = cupy.ElementwiseKernel(self.in_params, self.out_params, self.body,
                                                  self.name)
        return self._kernel(*args)

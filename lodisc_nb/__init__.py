__version__ = "0.0.1"

import warnings as _warnings
# fastai compiles a few of its own layers with `torch.jit.script` when it is imported; current torch deprecates that
# function and warns on every `import fastai...`, before any of our code runs. The user can do nothing about it, so
# this one message is silenced, and only where torch raises it (torch.jit._script); every other warning still shows.
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning,
                         module=r'torch\.jit\._script')

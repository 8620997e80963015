"""ModelBox's Python API over actorflow: ``import actorflow.compat.modelbox as modelbox``.

Code written for ModelBox's flow API runs with only its import line changed::

    import actorflow.compat.modelbox as modelbox

    flow = modelbox.Flow()
    flow.init("graphs/modelbox_hello.toml")
    flow.build()
    flow.run_async()
    data = flow.create_external_data_map()
    buffers = data.create_buffer_list()
    buffers.push_back(image)                       # a NumPy array, not copied
    data.send("input", buffers)
    data.shutdown()                                # end of input; results still come
    out = data.create_buffer_list()
    while data.recv(out) == modelbox.Status.StatusCode.STATUS_SUCCESS:
        result = np.array(out.get_buffer_list("output")[0], copy=False)
    assert flow.wait(0) == modelbox.Status.StatusCode.STATUS_STOP

It is a thin adapter: the graph runs on actorflow's runtime, on a background thread
with its own asyncio loop.
"""

from __future__ import annotations

from actorflow.compat.modelbox._buffer import Buffer as Buffer
from actorflow.compat.modelbox._buffer import BufferList as BufferList
from actorflow.compat.modelbox._external import ExternalDataMap as ExternalDataMap
from actorflow.compat.modelbox._flow import FORMAT_AUTO as FORMAT_AUTO
from actorflow.compat.modelbox._flow import FORMAT_JSON as FORMAT_JSON
from actorflow.compat.modelbox._flow import FORMAT_TOML as FORMAT_TOML
from actorflow.compat.modelbox._flow import Flow as Flow
from actorflow.compat.modelbox._log import debug as debug
from actorflow.compat.modelbox._log import error as error
from actorflow.compat.modelbox._log import fatal as fatal
from actorflow.compat.modelbox._log import info as info
from actorflow.compat.modelbox._log import warn as warn
from actorflow.compat.modelbox._log import warning as warning
from actorflow.compat.modelbox._status import Status as Status
from actorflow.compat.modelbox._status import StatusCode as StatusCode

__all__ = [
    "FORMAT_AUTO",
    "FORMAT_JSON",
    "FORMAT_TOML",
    "Buffer",
    "BufferList",
    "ExternalDataMap",
    "Flow",
    "Status",
    "StatusCode",
    "debug",
    "error",
    "fatal",
    "info",
    "warn",
    "warning",
]

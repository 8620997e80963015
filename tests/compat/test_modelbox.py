"""Seed 000 (ModelBox's Python flow API) through ``actorflow.compat.modelbox``."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import actorflow.compat.modelbox as modelbox
from actorflow.unit import flowunit

GRAPH = """\
[driver]
dir = "units"
[graph]
graphconf = '''digraph demo {
  input[type=input]
  output[type=output]
  process[flowunit=mbx_process]

  input->process->output
}'''
format = "graphviz"
"""

PROCESS = """\
import numpy as np

from actorflow.unit import flowunit


@flowunit(name="mbx_process")
def process(image):
    # a plain function: runs on the node's executor thread
    return np.ascontiguousarray(image[..., ::-1])
"""


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "process.py").write_text(PROCESS)
    path = tmp_path / "flow-example.toml"
    path.write_text(GRAPH)
    return path


def images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(4 + i, 6, 3), dtype=np.uint8) for i in range(count)]


def no_loop_threads() -> bool:
    return not any(t.name.startswith("actorflow-modelbox") for t in threading.enumerate())


def test_seed_000_example_runs_with_only_the_import_changed(flow_file: Path) -> None:
    """The seed's code, verbatim except for its import and the '# ....' placeholder."""
    from PIL import Image

    img_rgbs = images(3)
    received: list[Image.Image] = []
    statuses: list[object] = []

    # -- seed 000, 基本接口 + 外部数据交互 -------------------------------------------
    flow_file = str(flow_file)
    flow = modelbox.Flow()

    ret = flow.init(flow_file)
    if ret == False:  # noqa: E712 - the seed's own spelling
        modelbox.error(flow_file + " flow init failed")

    ret = flow.build()
    if ret == False:  # noqa: E712
        modelbox.error(flow_file + " flow build failed")

    ret = flow.run_async()
    if ret == False:  # noqa: E712
        modelbox.error(flow_file + " flow run async failed")

    def init_external_dat():
        extern_data = flow.create_external_data_map()
        return extern_data

    def send_external_data(extern_data):
        buffer_list = extern_data.create_buffer_list()
        for img_rgb in img_rgbs:
            im_array = np.asarray(img_rgb[:, :])
            buffer_list.push_back(im_array)
        extern_data.send("input", buffer_list)
        extern_data.shutdown()

    def recv_flow_data(extern_data):
        out_buffer = extern_data.create_buffer_list()
        while True:
            ret = extern_data.recv(out_buffer)
            statuses.append(ret)
            if ret != modelbox.Status.StatusCode.STATUS_SUCCESS:
                if ret == modelbox.Status.StatusCode.STATUS_EOF:
                    break

                extern_data.close()
                print("recv data failed", ret)
                break

            result_buffer_list = out_buffer.get_buffer_list("output")

            for i in range(result_buffer_list.size()):
                aa = result_buffer_list[i]
                np_image = np.array(aa, copy=False)
                image = Image.fromarray(np_image)
                received.append(image)

    extern_data = init_external_dat()
    send_external_data(extern_data)
    recv_flow_data(extern_data)

    ret = flow.wait(0)
    if ret != modelbox.Status.StatusCode.STATUS_STOP:
        modelbox.error(flow_file + " flow run failed")
    # -- end of seed -------------------------------------------------------------------

    assert ret == modelbox.Status.StatusCode.STATUS_STOP
    assert statuses == [modelbox.Status.StatusCode.STATUS_SUCCESS] * 3 + [
        modelbox.Status.StatusCode.STATUS_EOF
    ]
    assert [np.asarray(im).tolist() for im in received] == [
        img[..., ::-1].tolist() for img in img_rgbs
    ]
    assert no_loop_threads()


@flowunit(name="mbx_identity")
async def identity(data):
    return data


def test_buffers_are_not_copied(tmp_path: Path) -> None:
    graph = (
        "digraph { input[type=input] id[flowunit=mbx_identity] output[type=output] "
        "input -> id -> output }"
    )
    flow = modelbox.Flow()
    assert flow.init("passthrough", graph, modelbox.FORMAT_AUTO)
    assert flow.run_async()  # builds when needed
    data = flow.create_external_data_map()
    sent = np.arange(12, dtype=np.float32).reshape(3, 4)
    buffers = data.create_buffer_list()
    buffers.push_back(sent)
    assert data.send("input", buffers)
    assert data.shutdown()
    out = data.create_buffer_list()
    assert data.recv(out) == modelbox.Status.StatusCode.STATUS_SUCCESS
    received = np.array(out.get_buffer_list("output")[0], copy=False)
    assert np.shares_memory(received, sent)
    assert data.recv(out) == modelbox.Status.StatusCode.STATUS_EOF
    assert data.recv(out) == modelbox.Status.StatusCode.STATUS_EOF  # and stays at EOF
    assert flow.wait(0) == modelbox.Status.StatusCode.STATUS_STOP


def test_init_from_config_dict_and_json_text() -> None:
    config = {
        "graph": {
            "format": "graphviz",
            "graphconf": "digraph c { input[type=input] i[flowunit=mbx_identity] "
            "output[type=output] input -> i -> output }",
        }
    }
    flow = modelbox.Flow()
    assert flow.init(config)
    assert flow.build()
    text = (
        '{"graph": {"graphconf": "digraph j { input[type=input] output[type=output] '
        'input -> output }"}}'
    )
    assert modelbox.Flow().init("j", text, modelbox.Flow.Format.FORMAT_JSON)


def test_failures_return_falsy_statuses(tmp_path: Path) -> None:
    flow = modelbox.Flow()
    ret = flow.init(str(tmp_path / "missing.toml"))
    assert ret == False  # noqa: E712
    assert ret.code == modelbox.StatusCode.STATUS_BADCONF
    assert "graph file not found" in ret.errormsg()
    assert not flow.build()
    bad = modelbox.Flow()
    assert bad.init("x", "digraph { a[flowunit=no_such_unit_here] }", "FORMAT_AUTO")
    built = bad.build()
    assert not built
    assert "unknown unit 'no_such_unit_here'" in built.errormsg()


def test_wait_with_timeout_stops_the_flow() -> None:
    flow = modelbox.Flow()
    graph = (
        "digraph { input[type=input] id[flowunit=mbx_identity] output[type=output] "
        "input -> id -> output }"
    )
    flow.init("t", graph, "auto")
    assert flow.run_async()
    data = flow.create_external_data_map()  # never shut down: the flow would run forever
    assert flow.wait(20) == modelbox.Status.StatusCode.STATUS_TIMEDOUT
    assert modelbox.Status.StatusCode.STATUS_TIMEOUT is modelbox.StatusCode.STATUS_TIMEDOUT
    assert data.recv(data.create_buffer_list()) != modelbox.Status.StatusCode.STATUS_SUCCESS
    assert flow.stop()  # harmless afterwards
    assert no_loop_threads()


def test_unknown_ports_are_reported(flow_file: Path) -> None:
    flow = modelbox.Flow()
    assert flow.init(flow_file)
    assert flow.run_async()
    data = flow.create_external_data_map()
    buffers = data.create_buffer_list()
    buffers.push_back(images(1)[0])
    ret = data.send("inptu", buffers)
    assert ret.code == modelbox.StatusCode.STATUS_NOTFOUND
    assert "its inputs are: 'input'" in ret.errormsg()
    assert data.send("input", buffers)
    data.shutdown()
    out = data.create_buffer_list()
    assert data.recv(out)
    with pytest.raises(KeyError, match="outputs received: 'output'"):
        out.get_buffer_list("result")
    assert flow.stop()


def test_close_drops_the_rest_and_lets_the_flow_end(flow_file: Path) -> None:
    flow = modelbox.Flow()
    flow.init(flow_file)
    flow.run_async()
    data = flow.create_external_data_map()
    data.close()
    assert data.recv(data.create_buffer_list()) == modelbox.Status.StatusCode.STATUS_EOF
    assert flow.wait(0) == modelbox.Status.StatusCode.STATUS_STOP


@flowunit(name="mbx_picky")
async def picky(value):
    if value < 0:
        raise ValueError(f"negative: {value}")
    return value


def test_a_failed_item_comes_back_as_a_fault_status() -> None:
    flow = modelbox.Flow()
    graph = (
        "digraph { input[type=input] p[flowunit=mbx_picky] output[type=output] "
        "input -> p -> output }"
    )
    assert flow.init("picky", graph, "auto")
    assert flow.run_async()
    data = flow.create_external_data_map()
    for value in (1, -1, 2):
        buffers = data.create_buffer_list()
        buffers.push_back(value)
        assert data.send("input", buffers)
    data.shutdown()
    out = data.create_buffer_list()
    codes = []
    while (ret := data.recv(out)) != modelbox.Status.StatusCode.STATUS_EOF:
        codes.append(ret.code)
        if ret.code == modelbox.StatusCode.STATUS_FAULT:
            assert "node 'p' (mbx_picky) failed in process()" in ret.errormsg()
    assert sorted(codes) == [modelbox.StatusCode.STATUS_SUCCESS] * 2 + [
        modelbox.StatusCode.STATUS_FAULT
    ]
    assert flow.wait(0) == modelbox.Status.StatusCode.STATUS_STOP

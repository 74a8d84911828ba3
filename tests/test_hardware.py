"""GPU table: vendor/torchtitan peak numbers, memory units, lookup and errors."""
import pytest

from planner.errors import UserError
from planner.hardware import GB, GIB, GPUS, get_gpu, list_gpus


def test_peaks_match_torchtitan_get_peak_flops():
    # torchtitan 0.3.0 tools/utils.py::get_peak_flops (BF16 dense), notes §4
    expected = {"A100-40GB": 312e12, "A100-80GB": 312e12, "H100-SXM": 989e12, "H100-PCIe": 756e12,
                "H200": 989e12, "B200": 2.25e15, "GB200": 2.5e15}
    for name, peak in expected.items():
        assert get_gpu(name).peak_bf16_flops == peak


def test_dense_is_half_the_datasheet_sparsity_number():
    # datasheets quote "with sparsity" TFLOPS = 2 x dense: H100 SXM 1,979; H100 PCIe 1,513
    # (the L40S sheet prints 362.05 dense next to 733 sparse, so it is only checked to 2%)
    assert get_gpu("h100").peak_bf16_flops == pytest.approx(1979e12 / 2, rel=1e-3)
    assert get_gpu("h100-pcie").peak_bf16_flops == pytest.approx(1513e12 / 2, rel=1e-3)
    assert get_gpu("l40s").peak_bf16_flops == pytest.approx(733e12 / 2, rel=2e-2)


def test_aliases_are_case_and_punctuation_insensitive():
    assert get_gpu("h100").name == "H100-SXM"
    assert get_gpu("H100 SXM5").name == "H100-SXM"
    assert get_gpu("h100_pcie").name == "H100-PCIe"
    assert get_gpu("A100").name == "A100-80GB"
    assert get_gpu("a100-40gb").name == "A100-40GB"
    assert get_gpu("mi300x").name == "MI300X"
    g = get_gpu("h200")
    assert get_gpu(g) is g


def test_unknown_gpu_lists_known_names():
    with pytest.raises(UserError) as e:
        get_gpu("v100")
    msg = str(e.value)
    assert "v100" in msg and "H100-SXM" in msg and "A100-80GB" in msg
    with pytest.raises(UserError):
        get_gpu("")


def test_memory_units():
    # the A100 80GB driver total is 81,920 MiB = exactly 80 GiB
    assert get_gpu("a100-80gb").memory_bytes == 80 * GIB
    for g in list_gpus():
        # addressable memory is never below the marketed decimal GB (conversions are conservative)
        assert g.memory_bytes >= g.memory_gb_marketed * GB * 0.999, g.name
        assert g.memory_gb == pytest.approx(g.memory_bytes / 1e9)
        assert g.source and g.nvlink_domain >= 1 and 0 < g.default_mfu < 1
    assert get_gpu("h200").memory_gib > get_gpu("h100").memory_gib
    assert len(GPUS) >= 9


def test_to_dict_is_plain():
    d = get_gpu("h100").to_dict()
    assert d["name"] == "H100-SXM" and isinstance(d["aliases"], list) and d["memory_bytes"] > 0


def test_planner_modules_do_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, planner.hardware, planner.parallel.memory, planner.parallel.search, planner.cost; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_interconnect_bandwidths_per_direction_match_the_datasheets():
    # datasheet NVLink figures are both directions summed: H100/H200 900 GB/s, A100 600 GB/s,
    # B200/GB200 1.8 TB/s; DGX H100/H200/B200: one 400 Gb/s ConnectX-7 per GPU; DGX A100: 200 Gb/s HDR
    expected = {"H100-SXM": (900e9, 400), "H200": (900e9, 400), "A100-80GB": (600e9, 200), "A100-40GB": (600e9, 200),
                "B200": (1.8e12, 400), "GB200": (1.8e12, 400)}
    for name, (nvlink_both_ways, nic_gbit) in expected.items():
        g = get_gpu(name)
        assert g.nvlink_bandwidth == pytest.approx(nvlink_both_ways / 2), name
        assert g.network_bandwidth == pytest.approx(nic_gbit * 1e9 / 8), name
    # MI300X: 7 Infinity Fabric links x 128 GB/s (both directions) = 896 GB/s
    assert get_gpu("mi300x").nvlink_bandwidth == pytest.approx(7 * 128e9 / 2)
    for g in list_gpus():
        assert g.nvlink_bandwidth > g.network_bandwidth > 0 and g.interconnect_source, g.name
        assert "assum" in g.interconnect_source or "DGX" in g.interconnect_source, g.name

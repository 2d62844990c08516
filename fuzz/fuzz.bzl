"""toegang_fuzzer: one libFuzzer target, and the test that replays its corpus.

    toegang_fuzzer(name = "request_json_fuzzer", srcs = [...], deps = [...])

gives
  :request_json_fuzzer       the fuzzer. Under --config=fuzz (clang-14, libFuzzer, ASan
                             + UBSan) it is a libFuzzer binary; otherwise it replays the
                             files and directories given as arguments.
  :request_json_fuzzer_test  a test replaying corpus/request_json (the seeds and every
                             input kept from fuzzing) on every `./run test`, so a
                             finding, once added to the corpus, stays fixed.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

def toegang_fuzzer(name, srcs, deps = [], corpus = None):
    corpus = corpus or name[:-len("_fuzzer")]
    cc_library(
        name = name + "_lib",
        srcs = srcs,
        deps = deps + ["//fuzz:support"],
        alwayslink = 1,
        testonly = 1,
    )
    cc_binary(
        name = name,
        deps = [name + "_lib"] + select({
            "//fuzz:fuzzing": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        linkopts = select({
            "//fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        testonly = 1,
    )
    cc_test(
        name = name + "_test",
        size = "small",
        deps = [name + "_lib", "//fuzz:replay_main"],
        data = native.glob(["corpus/" + corpus + "/**"]),
        args = ["fuzz/corpus/" + corpus],
    )

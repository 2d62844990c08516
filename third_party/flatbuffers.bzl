"""flatbuffer_cc_library: runs Debian's flatc on one schema and yields a cc_library."""

def flatbuffer_cc_library(name, src, deps = [], visibility = None, include_paths = [], includes = []):
    """Generates `<schema>_generated.h` from `src` with flatc and wraps it.

    Args:
      name: the cc_library's name.
      src: one `.fbs` file in this package.
      deps: other flatbuffer_cc_library targets whose schemas `src` includes.
      visibility: of the cc_library.
      include_paths: extra `-I` directories for flatc (schemas `src` includes).
      includes: the `.fbs` files `src` includes (in this package; their generated
        headers come from `deps`).
    """
    if not src.endswith(".fbs"):
        fail("flatbuffer_cc_library: src must be a .fbs file, got " + src)
    header = src[:-len(".fbs")] + "_generated.h"
    flags = " ".join(["-I " + p for p in include_paths])
    native.genrule(
        name = name + "_flatc",
        srcs = [src] + includes,
        outs = [header],
        cmd = ("flatc --cpp --scoped-enums --gen-mutable --gen-name-strings " +
               "--reflect-names " + flags + " -o $(@D) $(location " + src + ")"),
        message = "flatc " + src,
    )
    native.cc_library(
        name = name,
        hdrs = [header],
        deps = deps + ["//third_party:flatbuffers"],
        visibility = visibility,
    )

# Generates a header holding tools/export_zoo.py as a string, so the binary can run the export
# without the source tree.
file(READ ${INPUT} CONTENT)
file(WRITE ${OUTPUT} "// Generated from tools/export_zoo.py; do not edit.\n#pragma once\nnamespace scission::zoo {\ninline constexpr const char* kExportZooScript = R\"PYSCRIPT(${CONTENT})PYSCRIPT\";\n}\n")

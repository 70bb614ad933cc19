# Turns a text file into a C source defining `const char SYMBOL[]` with its
# contents, NUL-terminated. Run as: cmake -DIN=... -DOUT=... -DSYMBOL=... -P embed_text.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x[0-9a-f][0-9a-f],){16}" "\\0\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN} by embed_text.cmake; do not edit. */\n"
  "extern const char ${SYMBOL}[];\n"
  "const char ${SYMBOL}[] = {\n${bytes}0x00};\n")

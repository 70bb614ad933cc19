# Turns schema/NNN_name.sql files into a C array of migrations, each with
# its version, name, text and SHA-256, so the cmdb binary carries its schema.
# Run as: cmake -DSCHEMA_DIR=... -DOUT=... -P embed_schema.cmake
file(GLOB files "${SCHEMA_DIR}/[0-9][0-9][0-9]_*.sql")
list(SORT files)
set(body "/* Generated from schema/ by embed_schema.cmake: do not edit. */\n#include \"migrations.h\"\n\n")
set(table "const struct cmdb_migration cmdb_migrations[] = {\n")
set(count 0)
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME_WE)
  string(SUBSTRING "${name}" 0 3 version)
  math(EXPR version "${version}")  # strips leading zeros
  file(SHA256 "${f}" sum)
  file(READ "${f}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
  string(APPEND body "static const char sql_${name}[] = {\n${hex}0x00};\n\n")
  string(APPEND table "\t{${version}, \"${name}\", sql_${name}, \"${sum}\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
string(APPEND table "};\nconst int cmdb_migrations_count = ${count};\n")
file(WRITE "${OUT}.tmp" "${body}${table}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)

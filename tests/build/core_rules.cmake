# core_rules.cmake - proves that the rooms are enforced by the build (ctest build.core_rules):
#   1. a core file that includes an I/O library's header does not compile;
#   2. a core file that includes a header of src/io does not compile;
#   3. a core file that includes core headers does (the control);
#   4. a core object that calls into src/io does not link against the core's libraries alone;
#   5. a call of a banned function (dw_banned.h) does not compile;
#   6. every source file includes dw_banned.h;
#   7. no source file but src/io/dw_redis.c includes hiredis or spells a Redis key.
# Run by ctest with -DCC, -DGUARD (the guard headers), -DINC (include/), -DCORE_LIB (libdw_core.a),
# -DLIBS (the libraries the core may use), -DSRC (src/) and -DWORK (a scratch directory).
file(MAKE_DIRECTORY ${WORK})
function(probe name text want_ok want_text)
    file(WRITE ${WORK}/${name}.c "${text}")
    execute_process(COMMAND ${CC} -std=c11 -fsyntax-only -I${GUARD} -I${INC} ${WORK}/${name}.c
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(want_ok AND NOT rc EQUAL 0)
        message(FATAL_ERROR "${name}: a pure include was refused:\n${out}")
    elseif(NOT want_ok AND rc EQUAL 0)
        message(FATAL_ERROR "${name}: compiled, but the core must not include this")
    elseif(NOT want_ok AND NOT out MATCHES "${want_text}")
        message(FATAL_ERROR "${name}: failed for another reason than the rule:\n${out}")
    endif()
    message(STATUS "${name}: as expected")
endfunction()

probe(lib_header "#include <hiredis/hiredis.h>\nint f(void);\n" FALSE "src/core must not include")
probe(lib_header_kafka "#include <librdkafka/rdkafka.h>\nint f(void);\n" FALSE
      "src/core must not include")
probe(io_header "#include \"driftwatch/io/dw_redis.h\"\nint f(void);\n" FALSE
      "src/core must not include")
probe(core_headers "#include \"driftwatch/core/dw_part.h\"\n#include \"driftwatch/core/dw_eval.h\"\nint f(void);\n"
      TRUE "")

# 5: banned functions (dw_banned.h, included last in every source file) do not compile.
probe(banned "#include <stdio.h>\n#include \"driftwatch/core/dw_banned.h\"\nint f(char *b) { return sprintf(b, \"x\"); }\n"
      FALSE "sprintf_is_a_banned_function")

# 4: the link rule (dw_core_closure in the build): an object calling dw_redis_ping, linked with
# the core library and the core's libraries only, must fail on that symbol.
file(WRITE ${WORK}/calls_io.c
     "struct dw_redis;\nint dw_redis_ping(struct dw_redis *r);\nint main(void) { return dw_redis_ping(0); }\n")
separate_arguments(libs UNIX_COMMAND "${LIBS}")
execute_process(COMMAND ${CC} ${WORK}/calls_io.c -Wl,--whole-archive ${CORE_LIB} -Wl,--no-whole-archive
                        ${libs} -o ${WORK}/calls_io
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0 OR NOT out MATCHES "dw_redis_ping")
    message(FATAL_ERROR "calls_io: a core object calling into src/io linked:\n${out}")
endif()
message(STATUS "calls_io: refused at link time, as expected")

# 6: every source file includes dw_banned.h (else rule 5 would not reach it).
file(GLOB_RECURSE sources ${SRC}/*.c)
foreach(f ${sources})
    file(READ ${f} text)
    if(NOT text MATCHES "#include \"driftwatch/core/dw_banned.h\"")
        message(FATAL_ERROR "${f} does not include driftwatch/core/dw_banned.h (last)")
    endif()
endforeach()
list(LENGTH sources n)
message(STATUS "all ${n} source files include dw_banned.h")

# 7: one Redis client and one place for key names: only src/io/dw_redis.c includes hiredis or
# formats a key ("{dw:%s..." or "<kind>:%s" of a kind of the key layout in dw_redis.h); other
# files name keys through dw_redis_name_* and reach Redis through dw_redis functions.
set(key_kinds "(cursor|cursor_final|refwins|ref|rolling_first|report|alerts|trigger|firing|errstream|lock|partitions|deliveries)")
foreach(f ${sources})
    if(f MATCHES "/io/dw_redis\\.c$")
        continue()
    endif()
    file(READ ${f} text)
    if(text MATCHES "#include <hiredis/")
        message(FATAL_ERROR "${f} includes hiredis: only src/io/dw_redis.c speaks to Redis")
    endif()
    if(text MATCHES "\"({dw:%|${key_kinds}:%)")
        message(FATAL_ERROR "${f} formats a Redis key (${CMAKE_MATCH_0}): name it with a "
                            "dw_redis_name_* builder of src/io/dw_redis.c")
    endif()
endforeach()
message(STATUS "only src/io/dw_redis.c includes hiredis or formats a Redis key")

/*
 * dw_test_json.h - members of a JSON object (a report, a payload) read by the tests: each fails
 * the test, naming the key, when the member is missing or of another type, so that a test
 * never compares against the 0 or NULL jansson gives for a missing member.
 */
#ifndef DW_TEST_JSON_H
#define DW_TEST_JSON_H

#include <jansson.h>

#include "dw_test.h"

/** @returns the number obj[key]. */
static inline double jreal(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) {
        fail_msg("%s is not a number", key);
    }
    return json_number_value(v);
}

/** @returns the integer obj[key]. */
static inline json_int_t jint(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        fail_msg("%s is not an integer", key);
    }
    return json_integer_value(v);
}

/** @returns the string obj[key]. */
static inline const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s) {
        fail_msg("%s is not a string", key);
    }
    return s;
}

#endif

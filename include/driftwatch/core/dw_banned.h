/*
 * dw_banned.h - functions this code base does not call (after git's banned.h).
 *
 * Included last in every source file, after the system headers that declare these functions:
 * a later call expands to an identifier that does not exist, so it fails to compile with the
 * reason in its name. What to use instead:
 *   sprintf, strcpy, strcat, strncpy   snprintf (always bounded, always terminated), dw_sbuf
 *   strtok                             memchr / strchr loops (strtok keeps hidden state)
 *   atoi, atof                         strtoll / strtod with their end pointer and errno, or
 *                                      dw_parse_i64 (a number that is not one is an error)
 *   gets                               fgets, getline
 *   gmtime, localtime                  gmtime_r (shared static buffers are not thread-safe;
 *                                      local time has no place in logs or reports)
 */
#ifndef DW_BANNED_H
#define DW_BANNED_H

#define DW_BANNED(func) sorry_##func##_is_a_banned_function_see_dw_banned_h

#undef sprintf
#define sprintf(...) DW_BANNED(sprintf)
#undef strcpy
#define strcpy(x, y) DW_BANNED(strcpy)
#undef strcat
#define strcat(x, y) DW_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) DW_BANNED(strncpy)
#undef strtok
#define strtok(x, y) DW_BANNED(strtok)
#undef atoi
#define atoi(x) DW_BANNED(atoi)
#undef atof
#define atof(x) DW_BANNED(atof)
#undef gets
#define gets(x) DW_BANNED(gets)
#undef gmtime
#define gmtime(t) DW_BANNED(gmtime)
#undef localtime
#define localtime(t) DW_BANNED(localtime)

#endif

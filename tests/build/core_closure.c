/*
 * core_closure.c - the entry of dw_core_closure, a program linked from every object of dw_core
 * (--whole-archive) and nothing but the libraries the core may use (libm, jansson, libcrypto,
 * pthreads). If a core function calls into src/io or src/cmd, this program fails to link and
 * the build stops: the rooms are a build rule, not a convention (docs/hacking.md).
 */
int main(void)
{
    return 0;
}

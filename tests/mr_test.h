/* mr_test.h - the tiny test runner of minrnn's tests.
   Each tests/test_<area>.c defines test functions `static void test_x(void)`
   and a table:
       MR_TEST_MAIN({"x", test_x}, {"y", test_y})
   Checks: MR_CHECK(cond), MR_CHECK_MSG(cond, fmt, ...), MR_CHECK_NEAR(a, b, tol)
   (relative to max(1,|a|,|b|)), MR_SKIP(reason). A failed check marks the test
   failed and continues. The program ends with "N passed, N failed, N skipped"
   and exits non-zero when anything failed. `--filter SUBSTR` runs a subset.
   tests/run_all.sh sums the lines of every test binary into one line. */
#ifndef MR_TEST_H
#define MR_TEST_H
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

typedef struct mr_test_case { const char *name; void (*fn)(void); } mr_test_case;

static int mr_test__failed_checks;
static int mr_test__skipped;
static const char *mr_test__current;

#define MR_CHECK_MSG(cond, ...) do { if (!(cond)) { mr_test__failed_checks++; \
    fprintf(stderr, "  FAIL %s:%d (%s): %s: ", __FILE__, __LINE__, mr_test__current, #cond); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)
#define MR_CHECK(cond) MR_CHECK_MSG(cond, "check failed")
#define MR_CHECK_NEAR(a, b, tol) do { double mr__a = (double)(a), mr__b = (double)(b); \
    double mr__s = fabs(mr__a) > fabs(mr__b) ? fabs(mr__a) : fabs(mr__b); if (mr__s < 1) mr__s = 1; \
    MR_CHECK_MSG(fabs(mr__a - mr__b) <= (tol) * mr__s && mr__a == mr__a && mr__b == mr__b, \
    "%s = %.9g, %s = %.9g, tol %g", #a, mr__a, #b, mr__b, (double)(tol)); } while (0)
#define MR_SKIP(reason) do { mr_test__skipped = 1; printf("  SKIP %s: %s\n", mr_test__current, reason); return; } while (0)

static int mr_test_run(int argc, char **argv, const mr_test_case *cases, int n) {
    const char *filter = NULL;
    int i, passed = 0, failed = 0, skipped = 0;
    for (i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    for (i = 0; i < n; i++) {
        int before = mr_test__failed_checks;
        if (filter && !strstr(cases[i].name, filter)) continue;
        mr_test__current = cases[i].name;
        mr_test__skipped = 0;
        cases[i].fn();
        if (mr_test__failed_checks != before) { failed++; printf("FAIL %s\n", cases[i].name); }
        else if (mr_test__skipped) skipped++;
        else { passed++; printf("ok   %s\n", cases[i].name); }
        fflush(stdout);
    }
    if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
#define MR_TEST_MAIN(...) \
    static const mr_test_case mr_test__cases[] = {__VA_ARGS__}; \
    int main(int argc, char **argv) { \
        return mr_test_run(argc, argv, mr_test__cases, (int)(sizeof mr_test__cases / sizeof mr_test__cases[0])); }
#endif

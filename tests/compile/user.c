/* ... and a second translation unit that uses only the declarations. */
#include "minrnn.h"
#include <stdio.h>
int main(void) {
    mr_ctx *ctx;
    mr_ctx_params p = mr_ctx_defaults();
    int64_t sh[2] = {2, 3};
    mr_tensor *t;
    if (mr_ctx_new(&ctx, &p) != MR_OK) return 1;
    t = mr_tensor_zeros(ctx, 2, sh, 0);
    printf("%s %lld\n", mr_status_str(mr_ctx_status(ctx)), (long long)(t ? mr_tensor_numel(t) : -1));
    mr_ctx_free(ctx);
    return 0;
}

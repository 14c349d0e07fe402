/* Compile check: MINRNN_STATIC keeps every function in this file. */
#define MINRNN_STATIC
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
int main(void) { return mr_status_str(MR_OK)[0] == 'o' ? 0 : 1; }

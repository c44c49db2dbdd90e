/* The httpd 2.4 and APR API that mod_esf uses; bindgen reads this file
 * (see build.rs). Nothing here is compiled into the module. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

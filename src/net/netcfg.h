/* netcfg.h - parsing of the [net] section into struct net_config. */
#ifndef CN_NETCFG_H
#define CN_NETCFG_H

#include <stdlib.h>

#include "cfg/cfg.h"
#include "net/net.h"

/* Parses s (which must be [net] or [network]) into c. On error c holds nothing to free. */
int net_config_parse(struct net_config *c, struct cfg_section *s, cn_error *e);
void net_config_free(struct net_config *c);
const char *net_policy_name(enum lr_policy p);

#endif

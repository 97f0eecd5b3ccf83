SELECT /* opscore */ i.dealloc, i.stats_reset FROM {pgss_info} i

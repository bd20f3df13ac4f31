# Golden values for evmeta.models.bias.multilevel_small_study: the multilevel Egger test and
# PET-PEESE as moderators of a three-level model (Nakagawa et al. 2022, Methods Ecol Evol
# 13:4-21), from metafor's rma.mv on real data: dat.konstantopoulos2011 (districts / schools).
# Run from the repository root:  Rscript tests/reference/multilevel_small_study.R
suppressMessages({library(metafor); library(jsonlite)})
tight <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)
k11 <- dat.konstantopoulos2011
out <- list(metafor_version = as.character(packageVersion("metafor")), data_source = "metafor::dat.konstantopoulos2011")
for (m in c("REML", "ML")) {
  pet <- rma.mv(yi, vi, mods = ~ sqrt(vi), random = ~ 1 | district/school, data = k11, method = m, control = tight)
  peese <- rma.mv(yi, vi, mods = ~ vi, random = ~ 1 | district/school, data = k11, method = m, control = tight)
  out[[m]] <- list(pet_beta = as.numeric(pet$beta), pet_se = as.numeric(pet$se), pet_pval = as.numeric(pet$pval),
                   pet_sigma2 = pet$sigma2, peese_beta = as.numeric(peese$beta), peese_se = as.numeric(peese$se),
                   peese_ci_lb = as.numeric(peese$ci.lb), peese_ci_ub = as.numeric(peese$ci.ub),
                   pet_ci_lb = as.numeric(pet$ci.lb), pet_ci_ub = as.numeric(pet$ci.ub))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/multilevel_small_study.json")

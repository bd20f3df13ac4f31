# clubSandwich CR2 / HTZ on a small review of the shape issue 22 describes: 8 studies,
# 13 comparisons, isolation method with three levels (3, 3 and 2 studies, so CR2 is defined:
# every coefficient is informed by at least two study clusters).
# Run from the repository root:  Rscript tests/reference/robust_small.R
# Writes tests/reference/robust_small.json (committed; tests read it, CI needs no R).
suppressMessages({library(metafor); library(jsonlite); library(clubSandwich)})

dat <- data.frame(
  study_id = c("S1", "S1", "S2", "S3", "S3", "S4", "S5", "S5", "S6", "S7", "S7", "S8", "S8"),
  experiment_id = c("S1a", "S1b", "S2a", "S3a", "S3b", "S4a", "S5a", "S5b", "S6a", "S7a", "S7b", "S8a", "S8b"),
  isolation_method = c("SEC", "SEC", "SEC", "SEC", "SEC", "UC", "UC", "UC", "UC",
                       "precipitation", "precipitation", "precipitation", "precipitation"),
  yi = c(1.21, 0.14, 2.05, 0.42, 1.53, 2.38, 0.90, 1.47, 3.01, -0.35, 0.91, 0.12, 1.18),
  vi = c(0.21, 0.18, 0.30, 0.15, 0.22, 0.35, 0.19, 0.25, 0.40, 0.17, 0.20, 0.16, 0.28)
)
dat$isolation_method <- factor(dat$isolation_method, levels = c("SEC", "UC", "precipitation"))
tight <- list(threshold = 1e-12, maxiter = 10000, stepadj = 1, tol = 1e-13)

summarise <- function(fit, cluster) {
  cs <- coef_test(fit, vcov = "CR2", cluster = cluster, test = "Satterthwaite")
  htz <- Wald_test(fit, constraints = constrain_zero(2:3), vcov = "CR2", cluster = cluster, test = "HTZ")
  list(beta = as.numeric(fit$b), se = as.numeric(cs$SE), df = as.numeric(cs$df_Satt),
       pval = as.numeric(cs$p_Satt), F = htz$Fstat, df_num = htz$df_num, df_denom = htz$df_denom,
       p = htz$p_val)
}

uni <- rma(yi, vi, mods = ~ isolation_method, data = dat, method = "REML", control = tight)
ml <- rma.mv(yi, vi, mods = ~ isolation_method, random = ~ 1 | study_id/experiment_id, data = dat,
             method = "REML")
out <- list(
  metafor_version = as.character(packageVersion("metafor")),
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  r_version = R.version.string,
  data = dat,
  uni = c(list(tau2 = uni$tau2), summarise(uni, dat$study_id)),
  multilevel = c(list(sigma2 = ml$sigma2), summarise(ml, dat$study_id))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), "tests/reference/robust_small.json")
cat("wrote tests/reference/robust_small.json\n")

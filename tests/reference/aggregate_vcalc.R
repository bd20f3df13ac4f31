# Golden values for evmeta.harmonize.aggregate_comparisons (metafor aggregate.escalc),
# evmeta.harmonize.sampling_covariance (metafor vcalc with rho and phi) and
# multilevel_meta_analysis with a known V (metafor rma.mv(yi, V, ...)), on real published
# data with several outcomes or time points per study, all shipped with metafor (metadat):
#   dat.ishak2007    46 studies of deep-brain stimulation in Parkinson's disease, change in
#                    UPDRS motor score at up to 4 follow-ups (Ishak et al. 2007, Clin Trials
#                    4:525-539): time points of the same patients (phi)
#   dat.berkey1998   5 trials of periodontal surgery, two outcomes (probing depth, attachment
#                    level) with their reported sampling covariances (Berkey et al. 1998,
#                    Stat Med 17:2537-2550): a full known V
#   dat.assink2016   17 studies, 100 effects of delinquency, several effects per study of
#                    three types (Assink et al. 2016, J Youth Adolesc 45:1707-1729): obs/type (rho)
# Run from the repository root:  Rscript tests/reference/aggregate_vcalc.R
# Writes tests/reference/aggregate_vcalc.json and the long-format data as
# tests/data/correlated/*.csv (committed; tests read them, CI needs no R).
suppressMessages({library(metafor); library(jsonlite)})

tight <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string)
dir.create("tests/data/correlated", showWarnings = FALSE, recursive = TRUE)
matrix_of <- function(V) unname(as.matrix(V))
agg_list <- function(a, cluster) list(cluster = as.character(a[[cluster]]), yi = as.numeric(a$yi),
                                      vi = as.numeric(a$vi))
fit_list <- function(r) list(beta = as.numeric(r$beta), se = as.numeric(r$se), sigma2 = as.numeric(r$sigma2),
                             logLik = as.numeric(logLik(r)), ci_lb = as.numeric(r$ci.lb),
                             ci_ub = as.numeric(r$ci.ub))

## dat.ishak2007 in long format, as in the metafor help pages of vcalc and aggregate.escalc.
ishak <- reshape(dat.ishak2007, direction = "long", idvar = "study", v.names = c("yi", "vi"),
                 varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
ishak <- ishak[order(ishak$study, ishak$time), ]
ishak <- ishak[!is.na(ishak$yi), ]
rownames(ishak) <- NULL
ishak$esid <- seq_len(nrow(ishak))
write.csv(data.frame(study = ishak$study, time = ishak$time, yi = as.numeric(ishak$yi),
                     vi = as.numeric(ishak$vi), mdur = ishak$mdur, mbase = ishak$mbase,
                     esid = ishak$esid),
          "tests/data/correlated/ishak2007_long.csv", row.names = FALSE)
V_car <- vcalc(vi, cluster = study, time1 = time, phi = 0.9, data = ishak)
out$ishak <- list(
  V_phi09 = matrix_of(V_car),
  aggregate_car_phi09 = agg_list(aggregate(ishak, cluster = study, struct = "CAR", time = time, phi = 0.9), "study"),
  aggregate_cs_rho06 = agg_list(aggregate(ishak, cluster = study, rho = 0.6), "study"),
  aggregate_V_phi09 = agg_list(aggregate(ishak, cluster = study, V = V_car), "study"),
  aggregate_cs_rho06_unweighted = agg_list(aggregate(ishak, cluster = study, rho = 0.6, weighted = FALSE), "study"),
  rma_mv_study = fit_list(rma.mv(yi, V_car, random = ~ 1 | study, data = ishak, control = tight)),
  rma_mv_study_esid = fit_list(rma.mv(yi, V_car, random = ~ 1 | study/esid, data = ishak, control = tight)),
  rma_mv_time_mods = fit_list(rma.mv(yi, V_car, mods = ~ factor(time), random = ~ 1 | study, data = ishak,
                                     control = tight))
)

## dat.berkey1998: two outcomes per trial with the reported covariance (v1i, v2i columns).
berkey <- dat.berkey1998
write.csv(data.frame(trial = berkey$trial, author = berkey$author, year = berkey$year, ni = berkey$ni,
                     outcome = berkey$outcome, yi = berkey$yi, vi = berkey$vi, v1i = berkey$v1i,
                     v2i = berkey$v2i),
          "tests/data/correlated/berkey1998.csv", row.names = FALSE)
V_berkey <- bldiag(lapply(split(berkey[, c("v1i", "v2i")], berkey$trial), as.matrix))
berkey_es <- escalc(yi = yi, vi = vi, data = berkey)
out$berkey <- list(
  V = matrix_of(V_berkey),
  aggregate_V = agg_list(aggregate(berkey_es, cluster = trial, V = V_berkey), "trial"),
  V_type_rho05 = matrix_of(vcalc(vi, cluster = trial, type = outcome, rho = 0.5, data = berkey)),
  rma_mv_outcome = fit_list(rma.mv(yi, V_berkey, mods = ~ outcome, random = ~ 1 | trial, data = berkey,
                                   control = tight))
)

## dat.assink2016: several effects (esid) of three delinquency types per study.
assink <- dat.assink2016
write.csv(assink, "tests/data/correlated/assink2016.csv", row.names = FALSE)
assink_es <- escalc(yi = yi, vi = vi, data = assink)
V_obs <- vcalc(vi, cluster = study, obs = esid, rho = 0.6, data = assink)
V_type_obs <- vcalc(vi, cluster = study, type = deltype, obs = esid, rho = c(0.7, 0.5), data = assink)
# Time in years as a continuous time1 (phi^|year difference|), to test non-integer lags.
V_type_time <- vcalc(vi, cluster = study, type = deltype, time1 = year, rho = 0.5, phi = 0.8,
                     data = transform(assink, year = esid / 2))
out$assink <- list(
  V_obs_rho06 = matrix_of(V_obs),
  V_type_obs_rho07_05 = matrix_of(V_type_obs),
  V_type_time_rho05_phi08 = matrix_of(V_type_time),
  aggregate_cs_rho06 = agg_list(aggregate(assink_es, cluster = study, rho = 0.6), "study"),
  aggregate_V_type_obs = agg_list(aggregate(assink_es, cluster = study, V = V_type_obs), "study"),
  rma_mv_study_esid = fit_list(rma.mv(yi, V_type_obs, random = ~ 1 | study/esid, data = assink,
                                      control = tight))
)

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE),
           "tests/reference/aggregate_vcalc.json")

# Golden values for importing a real published table with a risk-of-bias column and the
# review's moderators: Lagisz et al. 2020 (tests/data/judgement_bias/PROVENANCE.md).
# Run from the repository root:  Rscript tests/reference/judgement_bias_blinding.R
# Writes tests/reference/judgement_bias_blinding.json (committed; tests read it).
#
# The proportion outcomes (higher = more "optimistic" responses), SMD of the better vs
# the worse treatment group as the table gives them (escalc, independent groups), and
# random-effects models (REML, z tests) per level of the published moderators: blinding
# of the outcome assessor ("Blind": yes = SYRCLE low risk, no = high), affect
# manipulation and taxon.
suppressMessages({library(metafor); library(jsonlite)})

d <- read.csv("tests/data/judgement_bias/lagisz2020.csv", check.names = FALSE)
d <- d[d$MeasureType == "proportion", ]
es <- escalc("SMD", m1i = Better, sd1i = BetterSD, n1i = BetterN,
             m2i = Worse, sd2i = WorseSD, n2i = WorseN, data = d)
es$rob_blinding_assessor <- ifelse(es$Blind == "yes", "low", "high")
ctrl <- list(threshold = 1e-12, maxiter = 1000)
main <- rma(yi, vi, data = es, method = "REML", control = ctrl)
out <- list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
            k = nrow(es), studies = length(unique(es$ArticleID)),
            overall = list(estimate = as.numeric(main$b), se = main$se, tau2 = main$tau2),
            blind_studies = list(low = length(unique(es$ArticleID[es$Blind == "yes"])),
                                 high = length(unique(es$ArticleID[es$Blind == "no"]))),
            subgroups = list())
for (by in c("rob_blinding_assessor", "AffectManipCat", "Taxa")) {
  levels <- list()
  for (level in sort(unique(es[[by]]))) {
    fit <- rma(yi, vi, data = es[es[[by]] == level, ], method = "REML", control = ctrl)
    levels[[level]] <- list(k = fit$k, estimate = as.numeric(fit$b), se = fit$se, tau2 = fit$tau2)
  }
  out$subgroups[[by]] <- levels
}
# The same with the control split among the comparisons sharing it (what evmeta run uses,
# shared_control = "split"): rows of one article and outcome with identical control values
# share one control group, whose n is divided by the number of rows sharing it.
key <- paste(d$ArticleID, d$MeasureType, d$Worse, d$WorseSD, d$WorseN)
d$WorseN_split <- d$WorseN / ave(rep(1, nrow(d)), key, FUN = sum)
es2 <- escalc("SMD", m1i = Better, sd1i = BetterSD, n1i = BetterN,
              m2i = Worse, sd2i = WorseSD, n2i = WorseN_split, data = d)
es2$rob_blinding_assessor <- ifelse(es2$Blind == "yes", "low", "high")
main2 <- rma(yi, vi, data = es2, method = "REML", control = ctrl)
out$split <- list(shared = sum(duplicated(key) | duplicated(key, fromLast = TRUE)),
                  overall = list(estimate = as.numeric(main2$b), se = main2$se, tau2 = main2$tau2),
                  subgroups = list())
for (by in c("rob_blinding_assessor", "AffectManipCat", "Taxa")) {
  levels <- list()
  for (level in sort(unique(es2[[by]]))) {
    fit <- rma(yi, vi, data = es2[es2[[by]] == level, ], method = "REML", control = ctrl)
    levels[[level]] <- list(k = fit$k, estimate = as.numeric(fit$b), se = fit$se, tau2 = fit$tau2)
  }
  out$split$subgroups[[by]] <- levels
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/judgement_bias_blinding.json")
